/* The client's output: JSON as the API gave it (--json), and tables for
 * people: every column as wide as its widest cell, two spaces apart, a
 * header row in capitals first (the layout of Kafka's and rpk's tools). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_int.h"

struct cli_table {
    int n_cols;
    char **cells;                /* row-major, n_rows + 1 (header) rows */
    int n_rows;                  /* header included */
    int cap_rows;
};

void cli__print_json(const json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
}

int cli__stdout_failed(cli *c)
{
    return cli__fail(c, "cannot write the output: %s", strerror(errno ? errno : EIO));
}

cli_table *cli__table_new(int n_cols, const char *const *headers)
{
    cli_table *t = xcalloc(1, sizeof(*t));
    t->n_cols = n_cols;
    cli__table_add(t, headers);
    return t;
}

void cli__table_add(cli_table *t, const char *const *cells)
{
    if (t->n_rows == t->cap_rows) {
        t->cap_rows = t->cap_rows ? t->cap_rows * 2 : 16;
        t->cells = xrealloc(t->cells, (size_t)t->cap_rows * (size_t)t->n_cols * sizeof(char *));
    }
    for (int i = 0; i < t->n_cols; i++)
        t->cells[t->n_rows * t->n_cols + i] = xstrdup(cells[i] ? cells[i] : "");
    t->n_rows++;
}

void cli__table_print(cli_table *t, FILE *out)
{
    size_t *w = xcalloc((size_t)t->n_cols, sizeof(*w));
    for (int r = 0; r < t->n_rows; r++)
        for (int i = 0; i < t->n_cols; i++) {
            size_t n = strlen(t->cells[r * t->n_cols + i]);
            if (n > w[i])
                w[i] = n;
        }
    for (int r = 0; r < t->n_rows; r++) {
        char **row = t->cells + r * t->n_cols;
        int last = t->n_cols - 1;              /* no trailing blanks: stop at the last text */
        while (last > 0 && !row[last][0])
            last--;
        for (int i = 0; i < last; i++)
            fprintf(out, "%-*s  ", (int)w[i], row[i]);
        fprintf(out, "%s\n", row[last]);
    }
    free(w);
}

void cli__table_free(cli_table *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n_rows * t->n_cols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

const char *cli__cell(const json_t *v, char *buf, size_t len)
{
    if (json_is_string(v) && json_string_length(v))
        return json_string_value(v);
    if (json_is_integer(v))
        snprintf(buf, len, "%" PRId64, (int64_t)json_integer_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
    else if (json_is_real(v))
        snprintf(buf, len, "%g", json_real_value(v));
    else
        snprintf(buf, len, "-");
    return buf;
}
