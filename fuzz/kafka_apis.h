/* Every request in the generated codec, for the fuzz harnesses and their
 * corpus generators. The list is the generated KAFKA_APIS X-macro
 * (src/proto/kafka/gen/kafka_apis.h, from the APIS table in
 * tools/kafka_gen.py): X(name, NAME, key, min, max, handler), where name is
 * the codec prefix (kafka_<name>_request) and NAME the KAFKA_API_ /
 * KAFKA_ suffix. Harness macros take (name, NAME, ...). The seed corpus of
 * fuzz_decode selects an API by its index in this list: regenerate it
 * (gen_corpus_decode.c) when the list changes. */
#ifndef CAIRN_FUZZ_KAFKA_APIS_H
#define CAIRN_FUZZ_KAFKA_APIS_H
#include "proto/kafka/gen/kafka_apis.h"

#define FUZZ_KAFKA_APIS(X) KAFKA_APIS(X)
#endif
