import Foundation

/// Reads an import file as it arrives, in pieces of any size, into rows: CSV (RFC 4180: a header row naming the
/// columns, fields quoted with `"` when they hold a comma, a quote or a line break) or NDJSON (one JSON object a
/// line). Holds only the row being read, so memory does not grow with the file. A file it cannot read (an unknown
/// or missing column, a field count that differs from the header's, a quote left open, text that is not UTF-8,
/// a line that is not a JSON object) is refused with the line, and the caller stores none of it.
public struct ImportRecordReader: Sendable {
    public let format: ImportFormat
    /// The longest row read; a longer one is refused rather than held.
    public static let maxRowBytes = 64 * 1024

    private var csv = CSVState()
    private var pending: [UInt8] = []
    /// The line the reader is on, and the line the row being read started on.
    private var line = 1
    private var rowLine = 1
    private var header: [ImportRecord.Column]?
    private var atStart = true

    public init(format: ImportFormat) { self.format = format }

    /// The rows that `bytes` completes; an unfinished row waits for the next call.
    public mutating func read(_ bytes: some Sequence<UInt8>) throws(MalformedImport) -> [ImportRecord] {
        var records: [ImportRecord] = []
        for byte in bytes {
            if atStart {
                atStart = false
                csv.bom = byte == 0xEF ? 1 : 0
                if csv.bom == 1 { continue }
            } else if csv.bom > 0 && csv.bom < 3 {
                let expected: UInt8 = csv.bom == 1 ? 0xBB : 0xBF
                guard byte == expected else { throw MalformedImport(line: 1, reason: "the file is not UTF-8 text") }
                csv.bom += 1
                continue
            }
            switch format {
            case .csv: if let record = try csvByte(byte) { records.append(record) }
            case .ndjson: if let record = try ndjsonByte(byte) { records.append(record) }
            }
        }
        return records
    }

    /// The last row when the file does not end with a line break; refuses a file that ends inside a quoted field,
    /// or a CSV file without a header.
    public mutating func finish() throws(MalformedImport) -> [ImportRecord] {
        var records: [ImportRecord] = []
        switch format {
        case .csv:
            if csv.quoted && !csv.quoteSeen {
                throw MalformedImport(line: rowLine, reason: "a quoted field is not closed before the end of the file")
            }
            if !csv.cells.isEmpty || !csv.field.isEmpty || csv.fieldStarted {
                if let record = try endCSVRow() { records.append(record) }
            }
            guard header != nil else {
                throw MalformedImport(
                    line: 1,
                    reason:
                        "the file is empty: a CSV import starts with a header row naming its columns (\(ImportRecord.Column.names))"
                )
            }
        case .ndjson:
            if let record = try endNDJSONLine() { records.append(record) }
        }
        return records
    }

    // MARK: CSV

    private struct CSVState: Sendable {
        var field: [UInt8] = []
        var cells: [[UInt8]] = []
        var quoted = false
        /// Inside a quoted field, a quote was just read: the field's end, or the first of two.
        var quoteSeen = false
        /// The field began (so an empty last field still counts).
        var fieldStarted = false
        var rowBytes = 0
        var bom = 0
    }

    private mutating func csvByte(_ byte: UInt8) throws(MalformedImport) -> ImportRecord? {
        csv.rowBytes += 1
        guard csv.rowBytes <= Self.maxRowBytes else {
            throw MalformedImport(line: rowLine, reason: "a row is longer than \(Self.maxRowBytes) bytes")
        }
        if csv.quoted {
            if csv.quoteSeen {
                csv.quoteSeen = false
                if byte == UInt8(ascii: "\"") {
                    csv.field.append(byte)
                    return nil
                }
                csv.quoted = false  // the field's closing quote; this byte is read as after a field
            } else if byte == UInt8(ascii: "\"") {
                csv.quoteSeen = true
                return nil
            } else {
                if byte == UInt8(ascii: "\n") { line += 1 }
                csv.field.append(byte)
                return nil
            }
            switch byte {
            case UInt8(ascii: ","), UInt8(ascii: "\n"), UInt8(ascii: "\r"): break
            default:
                throw MalformedImport(line: line, reason: "a quoted field is followed by text before the next comma")
            }
        }
        switch byte {
        case UInt8(ascii: ","):
            csv.cells.append(csv.field)
            csv.field = []
            csv.fieldStarted = true
        case UInt8(ascii: "\n"):
            let record = try endCSVRow()
            line += 1
            rowLine = line
            return record
        case UInt8(ascii: "\r"):
            break  // a CRLF line break, or a stray CR: neither is data
        case UInt8(ascii: "\""):
            guard csv.field.isEmpty else {
                throw MalformedImport(line: line, reason: "a quote inside a field that does not start with one")
            }
            csv.quoted = true
            csv.fieldStarted = true
        default:
            csv.field.append(byte)
            csv.fieldStarted = true
        }
        return nil
    }

    private mutating func endCSVRow() throws(MalformedImport) -> ImportRecord? {
        var cells = csv.cells
        cells.append(csv.field)
        let blank = cells.count == 1 && cells[0].isEmpty && !csv.fieldStarted
        csv = CSVState(bom: csv.bom)
        if blank { return nil }
        var texts: [String] = []
        texts.reserveCapacity(cells.count)
        for cell in cells {
            guard let text = Self.text(Self.trimmed(cell)) else {
                throw MalformedImport(line: rowLine, reason: "the row is not UTF-8 text")
            }
            texts.append(text)
        }
        guard let header else {
            header = try Self.header(texts, line: rowLine)
            return nil
        }
        guard texts.count == header.count else {
            throw MalformedImport(
                line: rowLine, reason: "the row has \(texts.count) fields and the header names \(header.count)")
        }
        var byColumn: [ImportRecord.Column: String] = [:]
        for (column, text) in zip(header, texts) { byColumn[column] = text }
        return ImportRecord(
            line: rowLine, cells: byColumn,
            purposes: byColumn[.purposes].map(ImportRecord.purposeList).flatMap { $0.isEmpty ? nil : $0 })
    }

    /// A cell without the spaces and tabs around it.
    private static func trimmed(_ cell: [UInt8]) -> ArraySlice<UInt8> {
        let blank: (UInt8) -> Bool = { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        guard let first = cell.firstIndex(where: { !blank($0) }), let last = cell.lastIndex(where: { !blank($0) })
        else { return [] }
        return cell[first...last]
    }

    /// The cell as text, or nil when it is not UTF-8. ASCII, nearly every cell of a real file, needs no
    /// validation; the rest goes through the standard library's validating initialiser.
    private static func text(_ bytes: ArraySlice<UInt8>) -> String? {
        if bytes.allSatisfy({ $0 < 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
        return bytes.withUnsafeBufferPointer { String(validating: $0, as: UTF8.self) }
    }

    private static func header(_ names: [String], line: Int) throws(MalformedImport) -> [ImportRecord.Column] {
        var columns: [ImportRecord.Column] = []
        for (index, name) in names.enumerated() {
            let trimmed = name.trimmingCharacters(in: .whitespaces)
            guard
                let column = ImportRecord.Column.allCases.first(where: {
                    $0.rawValue.lowercased() == trimmed.lowercased()
                })
            else {
                let named = ImportRecord.nameForMessage(trimmed, position: index + 1)
                throw MalformedImport(
                    line: line,
                    reason: "the header names an unknown column \(named); the columns are \(ImportRecord.Column.names)")
            }
            guard !columns.contains(column) else {
                throw MalformedImport(line: line, reason: "the header names '\(column.rawValue)' twice")
            }
            columns.append(column)
        }
        for column in ImportRecord.Column.required where !columns.contains(column) {
            throw MalformedImport(line: line, reason: "the header has no '\(column.rawValue)' column")
        }
        return columns
    }

    // MARK: NDJSON

    private mutating func ndjsonByte(_ byte: UInt8) throws(MalformedImport) -> ImportRecord? {
        guard byte == UInt8(ascii: "\n") else {
            pending.append(byte)
            guard pending.count <= Self.maxRowBytes else {
                throw MalformedImport(line: line, reason: "a line is longer than \(Self.maxRowBytes) bytes")
            }
            return nil
        }
        let record = try endNDJSONLine()
        line += 1
        return record
    }

    private mutating func endNDJSONLine() throws(MalformedImport) -> ImportRecord? {
        defer { pending.removeAll(keepingCapacity: true) }
        let blank = pending.allSatisfy {
            $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r")
        }
        if blank { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: Data(pending)) as? [String: Any] else {
            throw MalformedImport(line: line, reason: "the line is not a JSON object")
        }
        var cells: [ImportRecord.Column: String] = [:]
        var purposes: [String]?
        for (key, value) in object {
            guard let column = ImportRecord.Column(rawValue: key) else {
                // Named only when it looks like a field's name (`nameForMessage`).
                let named =
                    ImportRecord.nameForMessage(key, position: 0).hasPrefix("'")
                    ? ImportRecord.nameForMessage(key, position: 0) : "(its name is not repeated)"
                throw MalformedImport(
                    line: line, reason: "unknown field \(named); the fields are \(ImportRecord.Column.names)")
            }
            if value is NSNull { continue }
            if column == .purposes, let list = value as? [Any] {
                let keys = list.compactMap { $0 as? String }
                guard keys.count == list.count else {
                    throw MalformedImport(line: line, reason: "'purposes' must be an array of strings")
                }
                purposes = keys
                continue
            }
            guard let text = value as? String else {
                throw MalformedImport(line: line, reason: "'\(key)' must be a string")
            }
            cells[column] = text.trimmingCharacters(in: .whitespaces)
            if column == .purposes { purposes = ImportRecord.purposeList(text) }
        }
        return ImportRecord(line: line, cells: cells, purposes: purposes.flatMap { $0.isEmpty ? nil : $0 })
    }
}
