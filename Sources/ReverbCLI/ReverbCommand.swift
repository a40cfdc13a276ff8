import ArgumentParser

/// `reverb`: the swift-reverb command line (`config.md` §6).
@main
struct ReverbCommand: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "reverb",
        abstract: "A Pusher-protocol WebSocket server: a Swift port of Laravel Reverb.",
        version: "swift-reverb \(version)",
        subcommands: [StartCommand.self, RestartCommand.self, TriggerCommand.self]
    )
}
