/* Core errors (-CN_E*, util/common.h) to Kafka error codes: the one place
 * where the core's currency becomes Kafka's. */
#include "kafka/kafka.h"
#include "util/common.h"

int16_t kerr_from_cn(int rc)
{
    switch (rc < 0 ? -rc : rc) {
    case 0: return KERR_NONE;
    /* storage */
    case CN_EIO:
    case CN_ENOSPC: return KERR_KAFKA_STORAGE_ERROR;
    case CN_ECORRUPT: return KERR_CORRUPT_MESSAGE;
    case CN_EINVAL: return KERR_INVALID_REQUEST;
    case CN_EEXIST: return KERR_TOPIC_ALREADY_EXISTS;
    case CN_ENOENT: return KERR_UNKNOWN_TOPIC_OR_PARTITION;
    case CN_ERANGE: return KERR_OFFSET_OUT_OF_RANGE;
    /* record batches */
    case CN_EFORMAT: return KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    case CN_ETOOBIG: return KERR_MESSAGE_TOO_LARGE;
    case CN_ECODEC: return KERR_UNSUPPORTED_COMPRESSION_TYPE;
    case CN_EBADREC: return KERR_INVALID_RECORD;
    /* topics */
    case CN_EBADNAME: return KERR_INVALID_TOPIC_EXCEPTION;
    case CN_EPARTITIONS: return KERR_INVALID_PARTITIONS;
    case CN_ECONFIG: return KERR_INVALID_CONFIG;
    /* producers and transactions */
    case CN_ESEQUENCE: return KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    case CN_EEPOCH: return KERR_INVALID_PRODUCER_EPOCH;
    case CN_EFENCED: return KERR_PRODUCER_FENCED;
    case CN_EPIDMAP: return KERR_INVALID_PRODUCER_ID_MAPPING;
    case CN_EBUSY: return KERR_CONCURRENT_TRANSACTIONS;
    case CN_ETXNSTATE: return KERR_INVALID_TXN_STATE;
    case CN_ETXNTIMEOUT: return KERR_INVALID_TRANSACTION_TIMEOUT;
    /* groups */
    case CN_EUNAVAIL: return KERR_COORDINATOR_NOT_AVAILABLE;
    case CN_ENOTCOORD: return KERR_NOT_COORDINATOR;
    case CN_ELOADING: return KERR_COORDINATOR_LOAD_IN_PROGRESS;
    case CN_ENOTLEADER: return KERR_NOT_LEADER_OR_FOLLOWER;
    case CN_ELEADERWAIT: return KERR_LEADER_NOT_AVAILABLE;
    case CN_EREPLICATION: return KERR_INVALID_REPLICATION_FACTOR;
    case CN_ENOTCONTROLLER: return KERR_NOT_CONTROLLER;
    case CN_EBADGROUP: return KERR_INVALID_GROUP_ID;
    case CN_ENOGROUP: return KERR_GROUP_ID_NOT_FOUND;
    case CN_ENOTEMPTY: return KERR_NON_EMPTY_GROUP;
    case CN_ENOMEMBER: return KERR_UNKNOWN_MEMBER_ID;
    case CN_EMEMBERREQ: return KERR_MEMBER_ID_REQUIRED;
    case CN_EGENERATION: return KERR_ILLEGAL_GENERATION;
    case CN_EREBALANCE: return KERR_REBALANCE_IN_PROGRESS;
    case CN_EINSTFENCED: return KERR_FENCED_INSTANCE_ID;
    case CN_EGROUPPROTO: return KERR_INCONSISTENT_GROUP_PROTOCOL;
    case CN_EGROUPFULL: return KERR_GROUP_MAX_SIZE_REACHED;
    case CN_ESESSIONTMO: return KERR_INVALID_SESSION_TIMEOUT;
    default: return KERR_UNKNOWN_SERVER_ERROR;
    }
}
