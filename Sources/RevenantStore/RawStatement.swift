import Foundation
import GRDB
import GRDBSQLite
import CRevenantSQLite
import RevenantCore
import RevenantHost

/// A cached GRDB statement driven through the SQLite C API: values are bound in place, without
/// boxing each one. Used only by the batch writer, inside its transaction.
struct RawStatement {
    let handle: OpaquePointer
    let db: Database
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(_ s: Statement, _ db: Database) {
        handle = s.sqliteStatement
        self.db = db
    }

    struct Binder {
        let handle: OpaquePointer
        var index: Int32 = 0
        mutating func int(_ v: Int64?) {
            index += 1
            if let v { sqlite3_bind_int64(handle, index, v) } else { sqlite3_bind_null(handle, index) }
        }
        mutating func text(_ v: String?) {
            index += 1
            guard var v else { sqlite3_bind_null(handle, index); return }
            v.withUTF8 { u in
                // An empty buffer may have no base address: bind a static empty string.
                guard let p = u.baseAddress, u.count > 0 else {
                    _ = sqlite3_bind_text(handle, index, "", 0, RawStatement.transient)
                    return
                }
                _ = sqlite3_bind_text(handle, index, UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self),
                                      Int32(u.count), RawStatement.transient)
            }
        }
        /// A blob, or text when the bytes are UTF-8.
        mutating func bytes(_ v: [UInt8], asText: Bool = false) {
            index += 1
            guard !v.isEmpty else {
                if asText { _ = sqlite3_bind_text(handle, index, "", 0, RawStatement.transient) } else { sqlite3_bind_zeroblob(handle, index, 0) }
                return
            }
            v.withUnsafeBytes { u in
                if asText {
                    _ = sqlite3_bind_text(handle, index, u.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(u.count), RawStatement.transient)
                } else {
                    _ = sqlite3_bind_blob(handle, index, u.baseAddress, Int32(u.count), RawStatement.transient)
                }
            }
        }
        /// NUL-separated, as `Store.joinArgv`.
        mutating func argv(_ v: [String]) {
            index += 1
            let bytes = Store.joinArgv(v)
            // Empty, not NULL: the column is NOT NULL.
            guard !bytes.isEmpty else { sqlite3_bind_zeroblob(handle, index, 0); return }
            bytes.withUnsafeBytes { u in
                _ = sqlite3_bind_blob(handle, index, u.baseAddress, Int32(u.count), RawStatement.transient)
            }
        }
    }

    func begin() -> Binder {
        sqlite3_reset(handle)
        return Binder(handle: handle)
    }

    /// A result row, read by column index.
    struct RawRow {
        let handle: OpaquePointer
        func isNull(_ i: Int32) -> Bool { sqlite3_column_type(handle, i) == SQLITE_NULL }
        func int(_ i: Int32) -> Int64 { sqlite3_column_int64(handle, i) }
        func optInt(_ i: Int32) -> Int64? { isNull(i) ? nil : int(i) }
        func text(_ i: Int32) -> String {
            guard let p = sqlite3_column_text(handle, i) else { return "" }
            return String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(handle, i))), as: UTF8.self)
        }
        func optText(_ i: Int32) -> String? { isNull(i) ? nil : text(i) }
        func blob(_ i: Int32) -> [UInt8] {
            guard let p = sqlite3_column_blob(handle, i) else { return [] }
            return Array(UnsafeRawBufferPointer(start: p, count: Int(sqlite3_column_bytes(handle, i))))
        }
    }

    /// Steps through the rows the bound statement returns; `body` returns false to stop.
    func rows(_ body: (RawRow) throws -> Bool) throws {
        defer { sqlite3_reset(handle) }
        while true {
            let rc = sqlite3_step(handle)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else {
                throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
            }
            guard try body(RawRow(handle: handle)) else { return }
        }
    }

    /// Runs an INSERT … ON CONFLICT DO UPDATE: the new row's id when it inserted, nil when it
    /// updated (SQLite changes the last insert rowid only on insert; RETURNING costs more).
    func runInsert() throws -> Int64? {
        let conn = db.sqliteConnection
        let before = sqlite3_last_insert_rowid(conn)
        try run()
        let after = sqlite3_last_insert_rowid(conn)
        return after != before ? after : nil
    }

    /// Steps to completion (the batch writer's statements return no rows).
    func run() throws {
        var rc = sqlite3_step(handle)
        while rc == SQLITE_ROW { rc = sqlite3_step(handle) }
        guard rc == SQLITE_DONE else {
            let message = String(cString: sqlite3_errmsg(db.sqliteConnection))
            sqlite3_reset(handle)
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: message)
        }
        sqlite3_reset(handle)
    }
}
