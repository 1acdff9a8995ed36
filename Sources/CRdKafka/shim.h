/* librdkafka for Swift. pkg-config gives no include path, so name the header fully. */
#include <librdkafka/rdkafka.h>
/* eventfd, which librdkafka signals its queue on (rd_kafka_queue_io_event_enable);
 * Swift's Glibc module does not export it. */
#include <sys/eventfd.h>

/* Produces one record with headers through rd_kafka_produceva (its argument
 * is an array of unions, which Swift cannot build conveniently). The payload,
 * key and headers are copied; `opaque` comes back in the delivery report. */
static inline rd_kafka_error_t *streamgate_produce(rd_kafka_t *rk, const char *topic, const void *key,
                                                   size_t key_size, const void *value, size_t value_size,
                                                   const char *const *header_names, const void *const *header_values,
                                                   const size_t *header_sizes, size_t header_count, void *opaque) {
    rd_kafka_vu_t vus[6 + 16];
    size_t n = 0;
    vus[n].vtype = RD_KAFKA_VTYPE_TOPIC; vus[n++].u.cstr = topic;
    vus[n].vtype = RD_KAFKA_VTYPE_KEY; vus[n].u.mem.ptr = (void *)key; vus[n++].u.mem.size = key_size;
    vus[n].vtype = RD_KAFKA_VTYPE_VALUE; vus[n].u.mem.ptr = (void *)value; vus[n++].u.mem.size = value_size;
    vus[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS; vus[n++].u.i = RD_KAFKA_MSG_F_COPY;
    vus[n].vtype = RD_KAFKA_VTYPE_OPAQUE; vus[n++].u.ptr = opaque;
    for (size_t i = 0; i < header_count && i < 16; i++) {
        vus[n].vtype = RD_KAFKA_VTYPE_HEADER;
        vus[n].u.header.name = header_names[i];
        vus[n].u.header.val = header_values[i];
        vus[n++].u.header.size = (ssize_t)header_sizes[i];
    }
    return rd_kafka_produceva(rk, vus, n);
}
