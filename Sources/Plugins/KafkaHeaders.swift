import CRdKafka

/// Record headers the Kafka source reads.
enum KafkaHeaders {
    /// The record's last `traceparent` header (W3C trace context), borrowed
    /// from the message: valid until it is destroyed. Nil without one.
    static func traceParent(of message: UnsafeMutablePointer<rd_kafka_message_t>) -> UnsafeRawBufferPointer? {
        var headers: OpaquePointer?
        guard rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else { return nil }
        var value: UnsafeRawPointer?
        var size = 0
        guard rd_kafka_header_get_last(headers, "traceparent", &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR,
              let value, size > 0
        else { return nil }
        return UnsafeRawBufferPointer(start: value, count: size)
    }
}
