import ConsentCore
import Foundation

/// What the page posted for a consent session: one answer for the whole notice, or one per category.
public enum ConsentSessionChoice: Sendable, Equatable {
    /// `{"accepted": …}`: one box for the whole notice, which is honest only when the notice has one category.
    case whole(accepted: Bool)
    /// `{"categories": {…}}`: a box per category, by the category's name.
    case categories([String: Bool])

    /// The categories the person ticked, in the notice's order. The answer must fit the notice: one `accepted` for
    /// several categories would grant them all with one tick, and a category list that is not exactly the
    /// notice's means the page showed something else.
    func ticked(of categories: [NoticeCategory]) throws(ConsentSessionChoiceError) -> [NoticeCategory] {
        switch self {
        case .whole(let accepted):
            guard categories.count == 1 else { throw .bundled(categories: categories.map(\.category)) }
            return accepted ? categories : []
        case .categories(let answers):
            let expected = categories.map(\.category.rawValue)
            let unknown = answers.keys.filter { !expected.contains($0) }.sorted()
            let missing = categories.map(\.category).filter { answers[$0.rawValue] == nil }
            guard unknown.isEmpty, missing.isEmpty else {
                throw .categoriesMismatch(expected: categories.map(\.category), unknown: unknown, missing: missing)
            }
            return categories.filter { answers[$0.category.rawValue] == true }
        }
    }
}

/// A decision that does not fit the session's notice; nothing is recorded and the token stays usable.
public enum ConsentSessionChoiceError: Error, Equatable {
    /// `accepted` for a notice of several categories.
    case bundled(categories: [PurposeCategory])
    /// `categories` whose keys are not exactly the notice's categories.
    case categoriesMismatch(expected: [PurposeCategory], unknown: [String], missing: [PurposeCategory])
}
