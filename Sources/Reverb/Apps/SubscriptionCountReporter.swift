import NIOConcurrencyHelpers
import NIOCore

/// Pusher's `subscription_count` feature (`config.md` §4): when the cluster-wide number of
/// subscribers of a non-presence channel changes, its local subscribers get
/// `pusher_internal:subscription_count` with the new number, at most once per channel per 5 s
/// (the latest number at the end of the window).
///
/// Told of changes under the app's directory lock, so it only notes them and schedules; the count
/// is read and sent from its event loop.
final class SubscriptionCountReporter: Sendable {
    static let interval = TimeAmount.seconds(5)
    /// Changes within this delay of the first are reported together.
    static let coalescingDelay = TimeAmount.milliseconds(10)

    private struct ChannelState {
        var lastSent: NIODeadline?
        var lastCount: Int?
        var scheduled = false
    }

    private let eventLoop: any EventLoop
    private let channels = NIOLockedValueBox([String: ChannelState]())

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// The cluster-wide count of `channel` may have changed.
    func countChanged(_ channel: String, app: AppContext) {
        guard !ChannelName.kind(of: channel).isPresence else { return }
        let now = eventLoop.now
        let delay: TimeAmount? = channels.withLockedValue { channels in
            var state = channels[channel] ?? ChannelState()
            guard !state.scheduled else { return nil }
            state.scheduled = true
            channels[channel] = state
            guard let lastSent = state.lastSent else { return Self.coalescingDelay }
            return max(Self.coalescingDelay, lastSent + Self.interval - now)
        }
        guard let delay else { return }
        eventLoop.scheduleTask(in: delay) { self.report(channel, app: app) }
    }

    private func report(_ channel: String, app: AppContext) {
        let count = app.directory.withState { $0.subscriptionCount(channel) }
        let now = eventLoop.now
        let send = channels.withLockedValue { channels -> Bool in
            guard var state = channels[channel] else { return false }
            state.scheduled = false
            guard count > 0 else {
                // Nobody left to tell anywhere; forget the channel.
                channels[channel] = nil
                return false
            }
            guard state.lastCount != count else {
                channels[channel] = state
                return false
            }
            state.lastCount = count
            state.lastSent = now
            channels[channel] = state
            return true
        }
        if send {
            app.broadcastLocally(
                channel: channel, frame: PusherFrames.subscriptionCount(channel: channel, count: count), except: nil)
        }
    }

    /// Channels with a pending or remembered report (bounded by occupied channels).
    var trackedChannels: Int { channels.withLockedValue { $0.count } }
}
