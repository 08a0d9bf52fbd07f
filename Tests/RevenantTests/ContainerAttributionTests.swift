import Foundation
import Glibc
import RevenantCore
import RevenantHost
import RevenantKernel
import RevenantStore
import RevenantQuery
import RevenantOutputs
import RevenantDaemon
import RevenantTestSupport
import Testing

/// Debian's podman restarting a container (`--restart=always`): the answer names the engine,
/// the container, its image and restart policy, and the remediation printed stops it for good
/// on the installed version (run here as printed).
@Suite(.serialized) struct ContainerAttributionTests {
    static let podman = "/usr/bin/podman"
    // This machine's cgroup layout and limits need these (see KERNEL-NOTES).
    static let runFlags = ["--runtime", "runc", "--cgroup-manager", "cgroupfs",
                           "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]

    @Test(.kernel, .timeLimit(.minutes(3))) func aRestartingPodmanContainerIsNamedAndStopped() async throws {
        try Kernel.check()
        try #require(FileManager.default.isExecutableFile(atPath: Self.podman), "podman is not installed: run scripts/install-deps.sh test")
        let dir = uniqueTempPath("ctr")
        try FileManager.default.createDirectory(atPath: dir + "/rootfs/bin", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: dir + "/rootfs/bin/busybox")
        for applet in ["sh", "sleep"] {
            try FileManager.default.createSymbolicLink(atPath: dir + "/rootfs/bin/" + applet, withDestinationPath: "busybox")
        }
        let image = "localhost/rvtest-busybox-\(getpid())"
        let imported = try sh(["/bin/sh", "-c", "tar -C \(dir)/rootfs -c . | \(Self.podman) import - \(image)"])
        try #require(imported.status == 0, "podman import: \(imported.err)")
        let name = "rvtest-ctr-\(getpid())"
        defer {
            _ = try? sh([Self.podman, "rm", "-f", name])
            _ = try? sh([Self.podman, "rmi", "-f", image])
        }

        let d = try DaemonUnderTest(name: "container")
        try await d.start()
        let inner = "sleep 1; exit \(getpid() % 200 + 3)"
        let run = try sh([Self.podman, "run", "-d", "--name", name, "--restart=always"] + Self.runFlags + [image, "/bin/sh", "-c", inner])
        try #require(run.status == 0, "podman run: \(run.err)")
        let program = Program(executable: "/bin/sh", script: "-c " + inner)
        func instances() -> [StoredProcess] { (try? Store(path: d.db, readOnly: true).instances(program: program)) ?? [] }
        for _ in 0..<60 where instances().count < 3 { try await Task.sleep(for: .milliseconds(500)) }
        try #require(instances().count >= 3, "the container ran \(instances().count) times in 30 s")
        try await d.settle()

        let latest = try #require(instances().first)
        let j = try whoSpawnedJSON(latest.record.id.pid, db: d.db, extra: ["--id", latest.record.id.description])
        let r = try #require(j["respawned_by"] as? [String: Any])
        #expect(r["mechanism"] as? String == "container", "\(r)")
        let settings = r["settings"] as? [String: String] ?? [:]
        #expect(settings["container"] == name)
        #expect(settings["restart_policy"] == "always")
        #expect(settings["image"]?.hasPrefix(image) == true, "\(settings)")
        #expect(settings["engine"]?.hasPrefix("podman 4") == true || settings["engine"]?.hasPrefix("podman") == true)
        let spawner = try #require(r["spawner"] as? [String: Any])
        #expect(spawner["comm"] as? String == "conmon")
        #expect((r["evidence"] as? [String])?.contains { $0.contains("forked under conmon(\(spawner["pid"] as? Int ?? -1))") } == true,
                "header and evidence name one spawner: \(r)")
        let text = try revenant(["who-spawned", String(latest.record.id.pid), "--db", d.db, "--id", latest.record.id.description])
        #expect(!text.out.contains("?("), "\(text.out)")

        // The remediation, run as printed, stops the respawns.
        let rem = r["remediation"] as? [String] ?? []
        try #require(!rem.isEmpty)
        for c in rem {
            #expect((try sh(["/bin/sh", "-n", "-c", c])).status == 0, "does not parse: \(c)")
            let ran = try sh(["/bin/sh", "-c", c])
            #expect(ran.status == 0, "\(c): \(ran.err)")
        }
        try await d.settle()   // the instance running when it was stopped is on record first
        let after = instances().count
        try await Task.sleep(for: .seconds(4))
        try await d.settle()
        #expect(instances().count == after, "the container came back after the remediation")
        d.stop()
    }
}
