import RevenantHost
import RevenantStore

// The store and host types a caller of the queries names: the CLI sees these and the queries,
// never the rest of the store's or the host's API.
public typealias Store = RevenantStore.Store
public typealias StoreError = RevenantStore.StoreError
public typealias StoredProcess = RevenantStore.StoredProcess
public typealias DaemonRun = RevenantStore.DaemonRun
public typealias TraceGap = RevenantStore.TraceGap
public typealias ExportRow = RevenantStore.ExportRow
public typealias ExportFilter = RevenantStore.ExportFilter
public typealias WallClock = RevenantHost.WallClock
public typealias BootClock = RevenantHost.BootClock
public typealias ProcReader = RevenantHost.ProcReader
public typealias LineFile = RevenantHost.LineFile
public typealias PolicyLoader = RevenantHost.PolicyLoader
public typealias HostIdentity = RevenantHost.HostIdentity
