import CFanout
import Foundation

/// Prometheus text-format families for what is aggregated before a scrape
/// sees it: the C loops' histograms (kept per loop, without locks, in fixed
/// buckets), and series whose labels are only known at scrape time (loops,
/// Kafka partitions). swift-prometheus' registry takes observations, not
/// bucket counts, so these are written beside its output rather than
/// replayed into it one observation at a time.
struct PrometheusText {
    private(set) var bytes: [UInt8] = []

    typealias Labels = [(String, String)]

    mutating func gauge(_ name: String, help: String, _ samples: [(Labels, Double)]) {
        family(name, help: help, type: "gauge")
        for (labels, value) in samples { sample(name, labels, value) }
    }

    mutating func counter(_ name: String, help: String, _ samples: [(Labels, Double)]) {
        family(name, help: help, type: "counter")
        for (labels, value) in samples { sample(name, labels, value) }
    }

    /// A histogram in seconds from the C core's buckets (not cumulative there,
    /// cumulative here, as the format wants).
    mutating func histogram(_ name: String, help: String, _ samples: [(Labels, cf_histogram)]) {
        family(name, help: help, type: "histogram")
        for (labels, histogram) in samples {
            var counts = histogram.counts
            let buckets = withUnsafeBytes(of: &counts) { Array($0.bindMemory(to: UInt64.self)) }
            var cumulative: UInt64 = 0
            for (index, count) in buckets.enumerated() {
                cumulative += count
                let bound = cf_histogram_bound_ns(Int32(index))
                let le = bound == UInt64.max ? "+Inf" : Self.number(Double(bound) / 1e9)
                sample(name + "_bucket", labels + [("le", le)], Double(cumulative))
            }
            sample(name + "_sum", labels, Double(histogram.sum_ns) / 1e9)
            sample(name + "_count", labels, Double(cumulative))
        }
    }

    private mutating func family(_ name: String, help: String, type: String) {
        bytes += Array("# HELP \(name) \(help)\n# TYPE \(name) \(type)\n".utf8)
    }

    private mutating func sample(_ name: String, _ labels: Labels, _ value: Double) {
        var line = name
        if !labels.isEmpty {
            line += "{" + labels.map { "\($0.0)=\"\(Self.escaped($0.1))\"" }.joined(separator: ",") + "}"
        }
        bytes += Array("\(line) \(Self.number(value))\n".utf8)
    }

    /// Label values escape `\`, `"` and newlines (the text format's rule).
    private static func escaped(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    private static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
    }
}
