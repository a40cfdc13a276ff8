import NIOHTTP1

/// Laravel validation messages keyed by field, in the order found; answered with `422`.
struct ValidationErrors {
    private var fields = JSONObject()
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func add(_ field: String, _ message: String) {
        var messages = fields[field]?.arrayValue ?? []
        messages.append(.string(message))
        fields[field] = .array(messages)
        count += 1
    }

    var response: HTTPResponse { .json(.unprocessableEntity, .object(fields)) }

    /// Laravel's `required` fails for a missing key, `null`, `""` and `[]`.
    static func isMissing(_ value: JSONValue?) -> Bool {
        switch value {
        case nil, .null?, .string("")?: return true
        case .array(let list)?: return list.isEmpty
        default: return false
        }
    }
}
