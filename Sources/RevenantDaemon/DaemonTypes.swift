import RevenantOutputs

// The output types the CLI names to configure the daemon and to chain an OCSF export. It names
// no kernel type: `trace`, `verify`, `doctor` and `unpin` go through `LiveTrace` and `Daemon`.
public typealias AuditLog = RevenantOutputs.AuditLog
public typealias ChainedWriter = RevenantOutputs.ChainedWriter
public typealias MetricsServer = RevenantOutputs.MetricsServer
public typealias SyslogForwarder = RevenantOutputs.SyslogForwarder
