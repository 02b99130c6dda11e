import Foundation
import MultipartKit
import NIOCore

/// A browser form's `multipart/form-data` body, read as it arrives: the small fields that come before the file
/// (`fields`, read first, at most `fieldLimit` bytes in all), then the file's bytes as an async sequence that
/// never holds more than one piece of the body. The form puts its file last, so that the fields (the CSRF token
/// among them) are checked before any of the file is read; a body whose file comes first, or that has no file
/// part named `fileField`, is refused.
final class MultipartFileUpload<Base: AsyncSequence & Sendable>: @unchecked Sendable where Base.Element == ByteBuffer {
    // @unchecked: one request's task reads it, first `readFields`, then the file's sequence, never both at once;
    // the parser and the body's iterator it holds are used only in turn.
    private var iterator: Base.AsyncIterator
    private let parser: MultipartParser
    private let fileField: String
    private let fieldLimit: Int

    private var partName: String?
    private var partFilename: String?
    private var partValue: [UInt8] = []
    private(set) var fields: [String: String] = [:]
    private var fieldBytes = 0
    private var inFile = false
    private var fileDone = false
    private var pending = ByteBuffer()
    private var failure: MultipartUploadError?
    private var parts = 0
    /// The import form has six parts.
    static var partLimit: Int { 16 }

    init(body: Base, contentType: String, fileField: String = "file", fieldLimit: Int = 16 * 1024) throws {
        guard let boundary = Self.boundary(contentType) else { throw MultipartUploadError.notMultipart }
        iterator = body.makeAsyncIterator()
        parser = MultipartParser(boundary: boundary)
        self.fileField = fileField
        self.fieldLimit = fieldLimit
        parser.onHeader = { [unowned self] name, value in header(name, value) }
        parser.onBody = { [unowned self] buffer in bodyBytes(&buffer) }
        parser.onPartComplete = { [unowned self] in partComplete() }
    }

    /// Reads until the file part begins; answers the fields before it.
    func readFields() async throws -> [String: String] {
        while !inFile {
            guard try await feed() else { throw MultipartUploadError.noFile }
        }
        return fields
    }

    /// The file's bytes, from where `readFields` stopped.
    var file: FileBytes { FileBytes(upload: self) }

    struct FileBytes: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let upload: MultipartFileUpload

        struct AsyncIterator: AsyncIteratorProtocol {
            let upload: MultipartFileUpload
            mutating func next() async throws -> ByteBuffer? { try await upload.nextFilePiece() }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(upload: upload) }
    }

    private func nextFilePiece() async throws -> ByteBuffer? {
        while pending.readableBytes == 0 {
            if fileDone { return nil }
            guard try await feed() else {
                // The body ended inside the file part: the form was cut short.
                throw MultipartUploadError.malformed
            }
        }
        let piece = pending
        pending = ByteBuffer()
        return piece
    }

    /// One piece of the body through the parser; false when the body has ended.
    private func feed() async throws -> Bool {
        guard let piece = try await iterator.next() else { return false }
        do { try parser.execute(piece) } catch { throw MultipartUploadError.malformed }
        if let failure { throw failure }
        return true
    }

    private func header(_ name: String, _ value: String) {
        guard name.lowercased() == "content-disposition" else { return }
        partName = Self.parameter("name", in: value)
        partFilename = Self.parameter("filename", in: value)
    }

    private func bodyBytes(_ buffer: inout ByteBuffer) {
        if partName == fileField, partFilename != nil {
            inFile = true
            pending.writeBuffer(&buffer)
            return
        }
        guard !inFile else {
            failure = .malformed  // a part after the file: not a form this service made
            return
        }
        fieldBytes += buffer.readableBytes
        guard fieldBytes <= fieldLimit else {
            failure = .fieldsTooLarge
            return
        }
        partValue.append(contentsOf: buffer.readableBytesView)
        buffer.moveReaderIndex(to: buffer.writerIndex)
    }

    private func partComplete() {
        // Each part's headers cost the parser too: a form with more parts than the page's is not the page's.
        parts += 1
        if parts > Self.partLimit { failure = .fieldsTooLarge }
        if partName == fileField, partFilename != nil {
            // An empty file sends no body bytes; it still begins and ends the file.
            inFile = true
            fileDone = true
        } else if let name = partName, !inFile {
            fields[name] = String(decoding: partValue, as: UTF8.self)
        }
        partName = nil
        partFilename = nil
        partValue = []
    }

    static func boundary(_ contentType: String) -> String? {
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.first?.lowercased() == "multipart/form-data" else { return nil }
        for part in parts.dropFirst() where part.lowercased().hasPrefix("boundary=") {
            var value = String(part.dropFirst("boundary=".count))
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 {
                value = String(value.dropFirst().dropLast())
            }
            return value.isEmpty || value.count > 70 ? nil : value
        }
        return nil
    }

    /// A parameter of a Content-Disposition value: `form-data; name="file"; filename="list.csv"`.
    static func parameter(_ name: String, in value: String) -> String? {
        for part in value.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard part.lowercased().hasPrefix(name + "=") else { continue }
            var text = String(part.dropFirst(name.count + 1))
            if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 {
                text = String(text.dropFirst().dropLast())
            }
            return text
        }
        return nil
    }
}

/// Why a form's body was not read: not multipart, fields past their limit, no file part, or bytes that do not parse.
enum MultipartUploadError: Error, Equatable {
    case notMultipart
    case fieldsTooLarge
    case noFile
    case malformed
}
