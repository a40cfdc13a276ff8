import ArgumentParser
import Reverb

/// `reverb`: the swift-reverb command line (`config.md` §6).
@main
struct ReverbCommand: AsyncParsableCommand {
    static let version = ReverbVersion.current

    static let configuration = CommandConfiguration(
        commandName: "reverb",
        abstract: "A Pusher-protocol WebSocket server: a Swift port of Laravel Reverb.",
        version: "swift-reverb \(version)",
        subcommands: [StartCommand.self, RestartCommand.self, TriggerCommand.self]
    )
}
