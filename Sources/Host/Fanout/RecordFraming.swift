import StreamgatePluginAPI

/// How this gateway frames a source record for clients: the one place where
/// the configuration's framing choice (`tracing.propagate`: forward the
/// record's `traceparent`) applies, shared by live delivery (the router) and
/// replays read from the source (the collector), so a message looks the same
/// whichever way it reaches a client.
struct RecordFraming: Sendable {
    /// Forward a record's valid `traceparent` in the delivery frame.
    var forwardsTraceContext = false

    /// A `cf_frame` owning one reference, or nil (out of memory, names too
    /// long). `gatewaySpan`: the trace context of the gateway's own span of
    /// this delivery (`tracing.export`), forwarded instead of the record's so
    /// the client's work is that span's child.
    func frame(_ record: SourceRecord, endpoint: String, gatewaySpan: String? = nil) -> OpaquePointer? {
        if forwardsTraceContext, let gatewaySpan {
            var own = gatewaySpan
            return own.withUTF8 { bytes in
                DeliveryFrame.make(
                    endpoint: endpoint, epoch: record.epoch, seq: record.offset, timestampMs: record.timestampMs,
                    traceParent: UnsafeRawBufferPointer(bytes), payload: record.value)
            }
        }
        var traceParent: UnsafeRawBufferPointer?
        if forwardsTraceContext, let candidate = record.traceParent, TraceParent.isValid(candidate) {
            traceParent = candidate
        }
        return DeliveryFrame.make(
            endpoint: endpoint, epoch: record.epoch, seq: record.offset, timestampMs: record.timestampMs,
            traceParent: traceParent, payload: record.value)
    }
}
