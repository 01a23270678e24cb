/* cn_strerror: names for the core's error currency (util/common.h). */
#include <string.h>

#include "util/common.h"

static const char *const cn_err_names[CN_E_LAST - CN_E_BASE] = {
    [CN_EFORMAT - CN_E_BASE] = "unsupported record batch format",
    [CN_ETOOBIG - CN_E_BASE] = "batch or message too large",
    [CN_ECODEC - CN_E_BASE] = "unsupported compression codec",
    [CN_EBADREC - CN_E_BASE] = "invalid record",
    [CN_EBADNAME - CN_E_BASE] = "invalid topic name",
    [CN_EPARTITIONS - CN_E_BASE] = "invalid partition count",
    [CN_ECONFIG - CN_E_BASE] = "invalid configuration",
    [CN_ESEQUENCE - CN_E_BASE] = "producer sequence out of order",
    [CN_EEPOCH - CN_E_BASE] = "stale producer epoch",
    [CN_EFENCED - CN_E_BASE] = "producer fenced",
    [CN_EPIDMAP - CN_E_BASE] = "producer id does not match the transactional id",
    [CN_EBUSY - CN_E_BASE] = "concurrent transaction state change",
    [CN_ETXNSTATE - CN_E_BASE] = "invalid transaction state",
    [CN_ETXNTIMEOUT - CN_E_BASE] = "invalid transaction timeout",
    [CN_EUNAVAIL - CN_E_BASE] = "coordinator unavailable",
    [CN_EBADGROUP - CN_E_BASE] = "invalid group id",
    [CN_ENOGROUP - CN_E_BASE] = "no such group",
    [CN_ENOTEMPTY - CN_E_BASE] = "group is not empty",
    [CN_ENOMEMBER - CN_E_BASE] = "unknown member id",
    [CN_EMEMBERREQ - CN_E_BASE] = "member id required",
    [CN_EGENERATION - CN_E_BASE] = "stale generation",
    [CN_EREBALANCE - CN_E_BASE] = "rebalance in progress",
    [CN_EINSTFENCED - CN_E_BASE] = "static member fenced",
    [CN_EGROUPPROTO - CN_E_BASE] = "inconsistent group protocol",
    [CN_EGROUPFULL - CN_E_BASE] = "group is full",
    [CN_ESESSIONTMO - CN_E_BASE] = "invalid session timeout",
    [CN_ENOTCOORD - CN_E_BASE] = "not the coordinator",
    [CN_ELOADING - CN_E_BASE] = "coordinator loading",
    [CN_ENOTLEADER - CN_E_BASE] = "not the leader",
    [CN_ELEADERWAIT - CN_E_BASE] = "leader not available yet",
    [CN_EREPLICATION - CN_E_BASE] = "invalid replication factor",
    [CN_ENOTCONTROLLER - CN_E_BASE] = "not the controller",
    [CN_ENOQUORUM - CN_E_BASE] = "leader out of contact with a majority of replicas",
    [CN_ECOMMITTMO - CN_E_BASE] = "not committed within the timeout",
    [CN_EFENCEDEPOCH - CN_E_BASE] = "leader epoch older than the partition's",
    [CN_EUNKNOWNEPOCH - CN_E_BASE] = "leader epoch newer than known here",
    [CN_EASSIGN - CN_E_BASE] = "invalid replica assignment",
    [CN_ENOMOVE - CN_E_BASE] = "no reassignment in progress",
};

const char *cn_strerror(int err)
{
    if (err < 0)
        err = -err;
    if (err == 0)
        return "ok";
    if (err > CN_E_BASE && err < CN_E_LAST && cn_err_names[err - CN_E_BASE])
        return cn_err_names[err - CN_E_BASE];
    if (err == CN_ECORRUPT)
        return "corrupt data";
    return strerror(err);
}
