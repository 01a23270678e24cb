/* channel.open, channel.close, channel.close-ok, channel.flow and
 * channel.flow-ok on an OPEN connection (conn.c checked the channel number,
 * that the channel is open unless this is channel.open, and handled a
 * channel we are closing).
 *
 * channel.flow only records the client's wish (1: deliver, 0: pause) in
 * ac->chan_flow and confirms it; delivery (ah_basic.c) skips paused
 * channels and resumes when the flow is active again. channel.open makes the
 * channel's achan, channel.close releases it (unacked deliveries requeued). */
#include "amqp/amqp_int.h"
#include "util/common.h"
#include "util/slog.h"

static void on_open(asrv_conn *ac, uint16_t ch, const amqp_method *m)
{
    if (ac->chan[ch] != ACH_FREE) {
        asrv__conn_error(ac, AMQP_CHANNEL_ERROR, m->class_id, m->method_id,
                         "channel %u is already open", ch);
        return;
    }
    ac->chan[ch] = ACH_OPEN;
    ac->chan_flow[ch] = 1;
    ac->cs[ch] = xcalloc(1, sizeof(achan));
    wbuf_init(&ac->cs[ch]->body);
    ac->n_chan++;
    amqp_channel_open_ok ok;
    amqp_channel_open_ok_init(&ok);
    asrv__send_method(ac, ch, AMQP_CHANNEL_OPEN_OK, &ok);
}

static void on_close(asrv_conn *ac, uint16_t ch)
{
    asrv__chan_release(ac, ch);
    ac->chan[ch] = ACH_FREE;
    ac->n_chan--;
    amqp_channel_close_ok ok;
    amqp_channel_close_ok_init(&ok);
    asrv__send_method(ac, ch, AMQP_CHANNEL_CLOSE_OK, &ok);
}

static void on_flow(asrv_conn *ac, uint16_t ch, const amqp_channel_flow *m)
{
    int was = ac->chan_flow[ch];
    ac->chan_flow[ch] = m->active ? 1 : 0;
    amqp_channel_flow_ok ok;
    amqp_channel_flow_ok_init(&ok);
    ok.active = m->active;
    asrv__send_method(ac, ch, AMQP_CHANNEL_FLOW_OK, &ok);
    if (!was && m->active && ac->cs[ch]) /* resume: serve this channel's consumers */
        for (int i = 0; i < ac->cs[ch]->n_cons; i++)
            asrv__dispatch(ac->cs[ch]->cons[i]->q);
}

void ah_channel(asrv_conn *ac, uint16_t ch, const amqp_method *m)
{
    switch (m->info->id) {
    case AMQP_CHANNEL_OPEN:
        on_open(ac, ch, m);
        break;
    case AMQP_CHANNEL_CLOSE:
        on_close(ac, ch);
        break;
    case AMQP_CHANNEL_FLOW:
        on_flow(ac, ch, &m->args.channel_flow);
        break;
    case AMQP_CHANNEL_FLOW_OK:
        /* An answer to a channel.flow of ours; we send none yet. */
        slog_debug("amqp connection %llu: channel %u: channel.flow-ok ignored",
                   (unsigned long long)net_conn_id(ac->c), ch);
        break;
    default: /* channel.close-ok on a channel we are not closing */
        asrv__conn_error(ac, AMQP_COMMAND_INVALID, m->class_id, m->method_id,
                         "%s on channel %u, which is not closing", m->info->name, ch);
        break;
    }
}
