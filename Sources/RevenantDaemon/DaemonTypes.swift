import RevenantKernel
import RevenantOutputs

// The kernel and output types the CLI names to run the daemon, `trace`, `verify` and `doctor`.
public typealias Tracer = RevenantKernel.Tracer
public typealias TraceCounters = RevenantKernel.TraceCounters
public typealias BPFError = RevenantKernel.BPFError
public typealias HostProbe = RevenantKernel.HostProbe
public typealias AuditLog = RevenantOutputs.AuditLog
public typealias ChainedWriter = RevenantOutputs.ChainedWriter
public typealias MetricsServer = RevenantOutputs.MetricsServer
public typealias SyslogForwarder = RevenantOutputs.SyslogForwarder
