import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// One box's worth of a notice: the purposes it covers in one category. A page asks for each category on its own,
/// so that ticking "order updates" never grants marketing as well (unbundled consent).
public struct NoticeCategory: Sendable, Equatable {
    public let category: PurposeCategory
    /// The notice's purposes of this category, in the notice's order, named as the tenant's catalogue names them.
    public let purposes: [Purpose]

    public init(category: PurposeCategory, purposes: [Purpose]) {
        self.category = category
        self.purposes = purposes
    }

    /// The wording of this category's box: its purposes' names, which the tenant chose (and can write in the
    /// notice's language by defining its own purposes).
    public var label: String { purposes.map(\.name).joined(separator: ", ") }

    /// A notice's purposes grouped by their category as the catalogue files them now, in the order the notice
    /// first names each category.
    static func of(_ notice: Notice, on connection: PostgresConnection, logger: Logger) async throws
        -> [NoticeCategory]
    {
        let rows = try await connection.closeSafeQuery(
            """
            SELECT key, name, category, tenant_id IS NULL FROM purposes WHERE key = ANY (\(notice.purposes)::text[])
            """, logger: logger)
        var catalogue: [String: Purpose] = [:]
        for try await (key, name, category, builtIn) in rows.decode((String, String, String, Bool).self) {
            guard let category = PurposeCategory(rawValue: category) else { continue }
            catalogue[key] = Purpose(key: key, name: name, category: category, builtIn: builtIn)
        }
        var categories: [NoticeCategory] = []
        for key in notice.purposes {
            // A notice names only purposes its tenant had, and purposes are never deleted: a gap is corruption, and
            // guessing a category for it could bundle it with the wrong box.
            guard let purpose = catalogue[key] else { throw NoticePurposeMissing(purpose: key) }
            if let index = categories.firstIndex(where: { $0.category == purpose.category }) {
                categories[index] = NoticeCategory(
                    category: purpose.category, purposes: categories[index].purposes + [purpose])
            } else {
                categories.append(NoticeCategory(category: purpose.category, purposes: [purpose]))
            }
        }
        return categories
    }
}

/// A notice names a purpose that the catalogue does not hold.
struct NoticePurposeMissing: Error, CustomStringConvertible {
    let purpose: String
    var description: String { "the notice names the purpose \(purpose), which the catalogue does not hold" }
}
