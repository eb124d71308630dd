import { useEffect } from 'preact/hooks';
import { describeError } from './components/FieldError';
import { AuthPage } from './pages/AuthPage';
import { InvitePage } from './pages/InvitePage';
import { NotFound } from './pages/NotFound';
import { ProjectsPage } from './pages/ProjectsPage';
import { RoomPage } from './pages/RoomPage';
import { linkClick, route, startRouter } from './router';
import { startServerMonitor } from './state/server';
import { currentUser, live, loadSession, logOut } from './state/session';
import { signal } from '@preact/signals';

const sessionError = signal<string | null>(null);

function retrySession(): void {
  sessionError.value = null;
  loadSession().catch((err) => {
    sessionError.value = describeError(err);
  });
}

export function App() {
  useEffect(() => startServerMonitor(), []);
  useEffect(() => startRouter(), []);
  useEffect(() => retrySession(), []);

  const user = currentUser.value;
  const r = route.value;
  let page;
  if (sessionError.value) {
    page = (
      <div class="auth">
        <h1>Atelier</h1>
        <p class="field-error" role="alert">
          {sessionError.value}
        </p>
        <button type="button" onClick={retrySession}>
          Try again
        </button>
      </div>
    );
  } else if (user === undefined) {
    page = <p class="muted">Loading…</p>;
  } else if (r.page === 'invite') {
    page = <InvitePage code={r.code} />;
  } else if (user === null) {
    page = <AuthPage />;
  } else if (r.page === 'home') {
    page = <ProjectsPage />;
  } else if (r.page === 'room' && live.value) {
    page = <RoomPage key={r.project} project={r.project} user={user} client={live.value} />;
  } else {
    page = <NotFound />;
  }

  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href="/" onClick={(e) => linkClick(e, '/')}>
          <span class="brand-mark" aria-hidden="true" />
          Atelier
        </a>
        {user && (
          <div class="topbar-user">
            <span class="muted small">Signed in as {user.username}</span>
            <button type="button" class="secondary small" onClick={() => void logOut()}>
              Log out
            </button>
          </div>
        )}
      </header>
      <main id="main" class="content">
        {page}
      </main>
      <footer class="footer">Atelier web client</footer>
    </div>
  );
}
