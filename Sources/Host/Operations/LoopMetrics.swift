import CFanout

/// What the C loops say about themselves, per loop: the commands waiting
/// (a loop that falls behind the host shows here first), the commands run,
/// how long each turn works; and over all loops, how long a record waits in
/// the gateway: from the moment the host framed it to the end of the flush
/// that wrote it to its subscribers' sockets.
enum LoopMetrics {
    static func write(_ server: FanoutServer, into text: inout PrometheusText) {
        let loops = (0..<server.loopCount).map { (index: $0, stats: server.loopStats($0)) }
        let label = { (index: Int) in [("loop", String(index))] }
        text.gauge("streamgate_loop_command_queue_depth", help: "Commands posted to the loop and not yet taken",
                   loops.map { (label($0.index), Double($0.stats.command_queue_depth)) })
        text.counter("streamgate_loop_commands_total", help: "Commands the loop ran (publishes, subscribes, sends, closes)",
                     loops.map { (label($0.index), Double($0.stats.commands_run)) })
        text.histogram("streamgate_loop_turn_duration_seconds",
                       help: "The work of each loop turn, from epoll's wake-up to the turn's end",
                       loops.map { (label($0.index), $0.stats.turn_duration) })
        var latency = cf_histogram()
        for loop in loops { add(loop.stats.delivery_latency, to: &latency) }
        text.histogram("streamgate_delivery_latency_seconds",
                       help: "Time a record spends in the gateway: framed by the host to written to its subscribers' sockets (per record and loop, sampled under load)",
                       [([], latency)])
    }

    private static func add(_ histogram: cf_histogram, to total: inout cf_histogram) {
        withUnsafeMutableBytes(of: &total.counts) { totals in
            withUnsafeBytes(of: histogram.counts) { counts in
                let into = totals.bindMemory(to: UInt64.self)
                for (index, count) in counts.bindMemory(to: UInt64.self).enumerated() { into[index] += count }
            }
        }
        total.sum_ns += histogram.sum_ns
    }
}
