// Who is in the room now, who is typing, and the state of the live connection.
import type { ConnectionStatus } from '../live/live_client';
import type { RoomStore } from '../state/room';

const LABELS: Record<ConnectionStatus, string> = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
  signed_out: 'Signed out',
  stopped: 'Disconnected',
};

export function ConnectionIndicator({ status }: { status: ConnectionStatus }) {
  return (
    <p class={`connection connection-${status}`} role="status" aria-live="polite" data-testid="connection">
      <span class="status-dot" aria-hidden="true" />
      {LABELS[status]}
    </p>
  );
}

export function PresenceBar({ store, selfId }: { store: RoomStore; selfId: number }) {
  const members = store.presence.value;
  const typing = members.filter((m) => m.user !== selfId && m.state.typing).map((m) => m.username);
  return (
    <div class="presence">
      <ul class="presence-list" aria-label="In the room now">
        {members.map((m) => (
          <li key={m.user} title={m.username}>
            <span class="avatar" aria-hidden="true">
              {m.username.slice(0, 2).toUpperCase()}
            </span>
            <span class="sr-only">{m.username}</span>
          </li>
        ))}
      </ul>
      <p class="muted small typing" aria-live="polite">
        {typing.length === 1 && `${typing[0]} is typing…`}
        {typing.length > 1 && `${typing.join(', ')} are typing…`}
      </p>
    </div>
  );
}
