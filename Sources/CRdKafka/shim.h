/* librdkafka for Swift. pkg-config gives no include path, so name the header fully. */
#include <librdkafka/rdkafka.h>
