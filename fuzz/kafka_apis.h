/* Every request in the generated codec, for the fuzz harnesses and their
 * corpus generators: X(c name, KAFKA_API_ / KAFKA_ suffix). Keep in step
 * with enum kafka_api_key in src/proto/kafka/gen/kafka_msgs.h. */
#ifndef CAIRN_FUZZ_KAFKA_APIS_H
#define CAIRN_FUZZ_KAFKA_APIS_H
#define FUZZ_KAFKA_APIS(X)                                                     \
    X(produce, PRODUCE)                                                        \
    X(fetch, FETCH)                                                            \
    X(list_offsets, LIST_OFFSETS)                                              \
    X(metadata, METADATA)                                                      \
    X(offset_commit, OFFSET_COMMIT)                                            \
    X(offset_fetch, OFFSET_FETCH)                                              \
    X(find_coordinator, FIND_COORDINATOR)                                      \
    X(join_group, JOIN_GROUP)                                                  \
    X(heartbeat, HEARTBEAT)                                                    \
    X(leave_group, LEAVE_GROUP)                                                \
    X(sync_group, SYNC_GROUP)                                                  \
    X(describe_groups, DESCRIBE_GROUPS)                                        \
    X(list_groups, LIST_GROUPS)                                                \
    X(sasl_handshake, SASL_HANDSHAKE)                                          \
    X(api_versions, API_VERSIONS)                                              \
    X(create_topics, CREATE_TOPICS)                                            \
    X(delete_topics, DELETE_TOPICS)                                            \
    X(delete_records, DELETE_RECORDS)                                          \
    X(init_producer_id, INIT_PRODUCER_ID)                                      \
    X(add_partitions_to_txn, ADD_PARTITIONS_TO_TXN)                            \
    X(add_offsets_to_txn, ADD_OFFSETS_TO_TXN)                                  \
    X(end_txn, END_TXN)                                                        \
    X(txn_offset_commit, TXN_OFFSET_COMMIT)                                    \
    X(describe_configs, DESCRIBE_CONFIGS)                                      \
    X(alter_configs, ALTER_CONFIGS)                                            \
    X(sasl_authenticate, SASL_AUTHENTICATE)                                    \
    X(create_partitions, CREATE_PARTITIONS)                                    \
    X(delete_groups, DELETE_GROUPS)                                            \
    X(incremental_alter_configs, INCREMENTAL_ALTER_CONFIGS)                    \
    X(offset_delete, OFFSET_DELETE)                                            \
    X(describe_cluster, DESCRIBE_CLUSTER)                                      \
    X(describe_producers, DESCRIBE_PRODUCERS)                                  \
    X(describe_transactions, DESCRIBE_TRANSACTIONS)                            \
    X(list_transactions, LIST_TRANSACTIONS)
#endif
