/// The `user_data` of a `pusher:signin` (`protocol.md` §13.1 step 2, §13.4): the user's id and
/// watchlist. Nothing else of it is kept: the string goes back once in `signin_success`.
struct UserData: Equatable {
    /// Watched ids kept per socket (Pusher's default).
    static let watchlistLimit = 100

    /// The user identity: a non-empty string, compared exactly.
    var id: String
    /// Non-empty string entries of `watchlist`, first occurrence, in order, at most `watchlistLimit`.
    var watchlist: [String]
    /// More distinct ids were given than `watchlistLimit` (the 4302 error).
    var watchlistTruncated: Bool

    /// Parses `user_data`; nil unless it is a JSON object whose `id` is a non-empty string (4200).
    init?(_ text: String) {
        guard case .object(let object)? = try? JSONParser.parse(text),
            case .string(let id)? = object["id"], !id.isEmpty
        else { return nil }
        self.id = id
        self.watchlist = []
        self.watchlistTruncated = false
        guard case .array(let entries)? = object["watchlist"] else { return }
        var seen = Set<String>()
        for entry in entries {
            guard case .string(let watched) = entry, !watched.isEmpty, !seen.contains(watched) else { continue }
            guard watchlist.count < Self.watchlistLimit else {
                watchlistTruncated = true
                break
            }
            seen.insert(watched)
            watchlist.append(watched)
        }
    }

    init(id: String, watchlist: [String] = [], watchlistTruncated: Bool = false) {
        self.id = id
        self.watchlist = watchlist
        self.watchlistTruncated = watchlistTruncated
    }
}
