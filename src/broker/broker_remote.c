/* Transaction markers for partitions another node leads: the broker only
 * passes them to the remote writer the cluster registered (broker.h). */
#include <string.h>

#include "broker/broker_int.h"
#include "util/common.h"

void broker_set_remote_writer(broker *b, const broker_remote_writer *w)
{
    if (w)
        b->remote = *w;
    else
        memset(&b->remote, 0, sizeof(b->remote));
}

int broker_marker_is_remote(const partition *p)
{
    return p->remote || (broker_partition_replicated(p) && !broker_partition_is_leader(p));
}

int broker_marker_remote(broker *b, broker_marker_req *r)
{
    if (!b->remote.submit)
        return -CN_ENOTLEADER;
    r->next = NULL;
    r->id = 0;
    r->sent_to = 0;
    r->deadline = 0;
    b->remote.submit(b->remote.ctx, r);
    return 0;
}

void broker_marker_cancel(broker *b, broker_marker_req *r)
{
    if (b->remote.cancel)
        b->remote.cancel(b->remote.ctx, r);
}
