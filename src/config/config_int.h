/* Between the files of the config module only. */
#ifndef CAIRN_CONFIG_INT_H
#define CAIRN_CONFIG_INT_H
#include <stddef.h>

/* Value checks of the table (config.c) that live in config_listen.c: 0 or
 * -CN_EINVAL with a message in err naming the key. */
int config__check_protocol_map(const char *name, const char *v, char *err, size_t err_len);
int config__check_protocols(const char *name, const char *v, char *err, size_t err_len);
int config__check_mechanisms(const char *name, const char *v, char *err, size_t err_len);
#endif
