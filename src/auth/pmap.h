/* The principal of a TLS client certificate: ssl.principal.mapping.rules,
 * with Kafka's rule syntax and meaning, turns the certificate subject's
 * distinguished name (RFC 2253, as tls_peer_subject gives it, e.g.
 * "CN=bob,OU=eng,O=Acme,C=US") into the user name of the principal
 * User:NAME that ACLs name.
 *
 * Rules, separated by commas or newlines, tried in order:
 *   DEFAULT                        the DN itself
 *   RULE:PATTERN/REPLACEMENT/[L|U] when PATTERN (a Perl-compatible regular
 *                                  expression, as Java's for Kafka's
 *                                  examples: lazy (.*?) works) matches the
 *                                  whole DN: REPLACEMENT with $1..$9 the
 *                                  captured groups, then L lowercases or U
 *                                  uppercases the result
 * A '/' inside PATTERN or REPLACEMENT is written "\/"; in REPLACEMENT a
 * backslash takes the next character literally ("\$" is a dollar).
 * Empty rules mean DEFAULT. When no rule applies (or the result is empty)
 * the certificate names no principal and its login fails, as in Kafka.
 *
 * Example: RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT maps
 * "CN=billing,OU=ServiceUsers,O=Acme" to User:billing and leaves other DNs
 * as they are.
 *
 * Compiled once (PCRE2, libpcre2-8); a compiled map is read-only, so any
 * thread may apply it. */
#ifndef CAIRN_AUTH_PMAP_H
#define CAIRN_AUTH_PMAP_H
#include <stddef.h>

typedef struct auth_pmap auth_pmap;

/* Compile rules (NULL or "" for DEFAULT). 0, or -CN_EINVAL with the
 * reason (naming the bad rule) in err. */
int auth_pmap_new(const char *rules, auth_pmap **out, char *err, size_t errlen);
void auth_pmap_free(auth_pmap *m); /* NULL is a no-op */

/* The user name dn maps to, NUL-terminated in out (outlen > 0). 0;
 * -CN_ENOENT when no rule applies or the result is empty; -CN_ERANGE
 * when it does not fit in out. A NULL map is DEFAULT. */
int auth_pmap_apply(const auth_pmap *m, const char *dn, char *out, size_t outlen);

#endif
