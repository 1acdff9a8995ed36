/* librdkafka for Swift. pkg-config gives no include path, so name the header fully. */
#include <librdkafka/rdkafka.h>
/* eventfd, which librdkafka signals its queue on (rd_kafka_queue_io_event_enable);
 * Swift's Glibc module does not export it. */
#include <sys/eventfd.h>
