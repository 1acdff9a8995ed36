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
        func make(_ traceParent: UnsafeRawBufferPointer?) -> OpaquePointer? {
            DeliveryFrame.make(
                endpoint: endpoint, epoch: record.epoch, seq: record.offset, timestampMs: record.timestampMs,
                traceParent: traceParent, payload: record.value)
        }
        guard forwardsTraceContext else { return make(nil) }
        if var own = gatewaySpan { return own.withUTF8 { make(UnsafeRawBufferPointer($0)) } }
        return make(record.traceParent.flatMap { TraceParent.isValid($0) ? $0 : nil })
    }
}
