import ArgumentParser
import RevenantQuery
import RevenantDaemon

/// `--db`: the store a command reads.
struct StoreOptions: ParsableArguments {
    @Option(help: "SQLite store.") var db: String = Store.defaultPath
}

/// `--json`: one JSON object (or JSON lines) instead of text.
struct JSONOptions: ParsableArguments {
    @Flag(help: "JSON output.") var json = false
}

/// `--root`: where respawn configuration is read when the spawner is gone.
struct RootOptions: ParsableArguments {
    @Option(help: "Read respawn configuration under this root when the spawner is gone.") var root: String = "/"
}
