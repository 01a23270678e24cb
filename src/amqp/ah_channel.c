/* channel.open, channel.close, channel.close-ok, channel.flow and
 * channel.flow-ok on an OPEN connection (conn.c checked the channel number,
 * that the channel is open unless this is channel.open, and handled a
 * channel we are closing).
 *
 * channel.flow only records the client's wish (1: deliver, 0: pause) in
 * ac->chan_flow and confirms it: nothing is delivered yet (basic.consume is
 * a later step), and the delivery code will read the flag. */
#include "amqp/amqp_int.h"
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
    ac->n_chan++;
    amqp_channel_open_ok ok;
    amqp_channel_open_ok_init(&ok);
    asrv__send_method(ac, ch, AMQP_CHANNEL_OPEN_OK, &ok);
}

static void on_close(asrv_conn *ac, uint16_t ch)
{
    ac->chan[ch] = ACH_FREE;
    ac->n_chan--;
    amqp_channel_close_ok ok;
    amqp_channel_close_ok_init(&ok);
    asrv__send_method(ac, ch, AMQP_CHANNEL_CLOSE_OK, &ok);
}

static void on_flow(asrv_conn *ac, uint16_t ch, const amqp_channel_flow *m)
{
    ac->chan_flow[ch] = m->active ? 1 : 0;
    amqp_channel_flow_ok ok;
    amqp_channel_flow_ok_init(&ok);
    ok.active = m->active;
    asrv__send_method(ac, ch, AMQP_CHANNEL_FLOW_OK, &ok);
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
