import { pendingChecks, serverInfo, serverState, serverStateLabel } from '../state/server';

const DETAILS = {
  checking: 'Contacting the server.',
  ready: 'Everything is up. You can start creating.',
  starting: 'The server is getting ready. This page updates by itself.',
  shutting_down: 'The server is stopping. Try again in a moment.',
  unavailable: 'Cannot reach the server. Retrying automatically.',
} as const;

export function ServerStatus() {
  const state = serverState.value;
  const info = serverInfo.value;
  const pending = pendingChecks.value;

  return (
    <section class="card" aria-labelledby="server-heading">
      <h2 id="server-heading" class="card-title">
        Server
      </h2>
      <p class={`status status-${state}`} role="status" aria-live="polite" data-testid="server-status">
        <span class="status-dot" aria-hidden="true" />
        {serverStateLabel.value}
      </p>
      <p class="muted">{DETAILS[state]}</p>
      {pending.length > 0 && (
        <ul class="checks" aria-label="Still waiting for">
          {pending.map(([name, reason]) => (
            <li key={name}>
              <span class="check-name">{name}</span>: {reason}
            </li>
          ))}
        </ul>
      )}
      <dl class="facts">
        <div>
          <dt>Version</dt>
          <dd data-testid="server-version">{info ? info.version : 'unknown'}</dd>
        </div>
        <div>
          <dt>API</dt>
          <dd>{info ? info.api : 'unknown'}</dd>
        </div>
      </dl>
    </section>
  );
}
