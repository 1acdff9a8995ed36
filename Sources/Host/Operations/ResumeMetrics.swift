/// How resumes ended, by where the missed messages came from and the result.
enum ResumeMetrics {
    static func write(_ counters: ResumeCounters, into text: inout PrometheusText) {
        var samples: [(PrometheusText.Labels, Double)] = []
        for source in ResumeCounters.Source.allCases {
            for result in ResumeCounters.Result.allCases {
                samples.append(([("source", source.label), ("result", result.label)], Double(counters.value(source, result))))
            }
        }
        text.counter("streamgate_resumes_total",
                     help: "Subscriptions with a position, by where the missed messages came from (cache, kafka) and how they ended",
                     samples)
    }
}
