import Foundation
import Glibc
import RevenantCore
@testable import RevenantHost
@testable import RevenantKernel
@testable import RevenantStore
@testable import RevenantQuery
@testable import RevenantOutputs
@testable import RevenantDaemon
import RevenantTestSupport
import Testing

/// RFC 4180 rows, enough to read back what export wrote.
func parseCSV(_ text: String) -> [[String]] {
    var rows: [[String]] = [], row: [String] = [], field = "", quoted = false
    var it = Array(text).makeIterator()
    var pending: Character? = nil
    while let c = pending ?? it.next() {
        pending = nil
        if quoted {
            if c == "\"" {
                if let n = it.next() { if n == "\"" { field.append("\"") } else { quoted = false; pending = n } } else { quoted = false }
            } else { field.append(c) }
        } else if c == "\"" { quoted = true }
        else if c == "," { row.append(field); field = "" }
        else if c == "\n" { row.append(field); rows.append(row); row = []; field = "" }
        else { field.append(c) }
    }
    return rows
}

let ExportFormat_header = "time,boot,pid,id,parent_pid,parent_id,parent_comm,exe,cmd_line,cwd,uid,cgroup,seeded,enforcement,exit_time,exit_code,signal"
    .split(separator: ",").map(String.init)
