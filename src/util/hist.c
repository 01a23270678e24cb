/* Fixed-bucket histograms (contract and the bucket choices in hist.h). */
#include "util/hist.h"

#include <string.h>
#include <time.h>

const hist_spec hist_latency_ns = {
    16,
    {100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 25000000, 50000000,
     100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000},
    {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
     "0.25", "0.5", "1", "2.5", "5", "10"},
    1e-9,
};

const hist_spec hist_bytes = {
    10,
    {256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864},
    {"256", "1024", "4096", "16384", "65536", "262144", "1048576", "4194304", "16777216",
     "67108864"},
    1.0,
};

const hist_spec hist_records = {
    16,
    {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000},
    {"1", "2", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000",
     "25000", "50000", "100000"},
    1.0,
};

void hist_init(hist *h, const hist_spec *spec)
{
    memset(h, 0, sizeof(*h));
    h->spec = spec;
}

void hist_observe(hist *h, int64_t v)
{
    if (v < 0)
        v = 0;
    const hist_spec *s = h->spec;
    /* Binary search for the first bound >= v; n_bounds when above all. */
    int lo = 0, hi = s->n_bounds;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (s->bounds[mid] >= v)
            hi = mid;
        else
            lo = mid + 1;
    }
    h->buckets[lo]++;
    h->count++;
    h->sum += v;
}

int64_t hist_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
