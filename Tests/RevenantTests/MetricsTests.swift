import Foundation
import Glibc
import Logging
import RevenantCore
@testable import RevenantHost
@testable import RevenantKernel
@testable import RevenantStore
@testable import RevenantQuery
@testable import RevenantOutputs
@testable import RevenantDaemon
import RevenantTestSupport
import Testing

/// revenant plugged into the engines a fleet already runs: Debian's Prometheus scrapes it.
@Suite(.serialized) struct MetricsTests {
    @Test(.kernel, .timeLimit(.minutes(3))) func prometheusScrapesTheKillCount() async throws {
        try Kernel.check()
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus"), "prometheus missing: run scripts/install-deps.sh test")
        let w = try MarkerWorker()
        defer { w.cleanup() }
        let policy = try blockV1(w)
        let mport = try freePort()
        let d = try DaemonUnderTest(name: "metrics")
        try await d.start(["--policy", policy, "--metrics", "127.0.0.1:\(mport)"])
        defer { d.stop() }

        // Prometheus, scraping it every second, with its HTTP API on another loopback port.
        let pport = try freePort()
        let conf = d.dir + "/prometheus.yml"
        try """
            global: { scrape_interval: 1s, evaluation_interval: 1s }
            scrape_configs:
              - job_name: revenant
                static_configs: [ { targets: ["127.0.0.1:\(mport)"] } ]
            """.write(toFile: conf, atomically: true, encoding: .utf8)
        let prom = Process()
        prom.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        prom.arguments = ["--config.file=\(conf)", "--storage.tsdb.path=\(d.dir)/tsdb", "--web.listen-address=127.0.0.1:\(pport)"]
        let promLog = FileHandle(forWritingAtPath: "/dev/null")
        prom.standardOutput = promLog
        prom.standardError = promLog
        try prom.run()
        defer { prom.terminate(); prom.waitUntilExit() }

        for _ in 0..<3 { #expect(killedBySignal9(spawn([w.path("v1")]).status)) }
        try await d.settle()

        // Straight from the endpoint, in the text format.
        let text = try #require(httpGet("http://127.0.0.1:\(mport)/metrics"), "the metrics endpoint did not answer")
        #expect(text.contains("revenant_blocked_total{rule=\"block-v1\",tier=\"kill-at-exec\"} 3"), "\(text)")
        #expect(text.contains("revenant_events_total{type=\"exec\"}"))
        #expect(text.contains("revenant_process_resident_bytes"))
        #expect(text.contains("revenant_ringbuf_fill_ratio"))
        #expect(text.contains("revenant_store_write_seconds_bucket"))
        #expect(httpGet("http://127.0.0.1:\(mport)/other") == nil, "only /metrics is served")

        // Through Prometheus: a PromQL query over its HTTP API returns the kill count.
        var value: String?
        for _ in 0..<60 {
            try await Task.sleep(for: .milliseconds(500))
            let q = "sum(revenant_blocked_total{rule=\"block-v1\"})".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            guard let body = httpGet("http://127.0.0.1:\(pport)/api/v1/query?query=\(q)"),
                  let j = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                  let result = (j["data"] as? [String: Any])?["result"] as? [[String: Any]],
                  let v = result.first?["value"] as? [Any], v.count == 2 else { continue }
            value = v[1] as? String
            if value == "3" { break }
        }
        #expect(value == "3", "PromQL sum(revenant_blocked_total) = \(value ?? "no answer")")
    }

    @Test func metricsAddressesParse() {
        #expect(MetricsServer.Address("9464")?.description == "127.0.0.1:9464")
        #expect(MetricsServer.Address("0.0.0.0:9464")?.isLoopback == false)
        #expect(MetricsServer.Address("[::1]:9464")?.host == "::1")
        #expect(MetricsServer.Address("[::1]:9464")?.isLoopback == true)
        #expect(MetricsServer.Address("host:") == nil && MetricsServer.Address("x") == nil && MetricsServer.Address("0") == nil)
    }
}
