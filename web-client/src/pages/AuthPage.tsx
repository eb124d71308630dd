// Log in or sign up. With an invite code, signing up also joins the invite's project.
import { useState } from 'preact/hooks';
import { ServerStatus } from '../components/ServerStatus';
import { describeError, errorField, FieldError } from '../components/FieldError';
import { logIn, signUp } from '../state/session';

export function AuthPage({ invite, onDone }: { invite?: string; onDone?: () => void }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ field: string | undefined; message: string } | null>(null);

  const run = async (action: 'login' | 'signup') => {
    setBusy(true);
    setError(null);
    try {
      if (action === 'login') await logIn(username, password);
      else await signUp(username, password, invite);
      onDone?.();
    } catch (err) {
      const field = errorField(err);
      let message = describeError(err);
      if (action === 'login' && (err as { status?: number }).status === 401) {
        message = 'Wrong username or password.';
      }
      setError({ field, message });
    } finally {
      setBusy(false);
    }
  };

  const fieldError = (name: string) => (error && error.field === name ? error.message : null);
  const formError = error && error.field !== 'username' && error.field !== 'password' ? error.message : null;

  return (
    <div class="auth">
      <h1>Atelier</h1>
      <p class="lede">
        {invite
          ? 'You have been invited to a project. Sign up (or log in) to join it.'
          : 'Create AI art together with your team, on one shared canvas.'}
      </p>
      <form
        class="card auth-form"
        onSubmit={(e) => {
          e.preventDefault();
          void run('login');
        }}
      >
        <label for="auth-username">Username</label>
        <input
          id="auth-username"
          name="username"
          autocomplete="username"
          value={username}
          aria-invalid={fieldError('username') ? true : undefined}
          aria-describedby={fieldError('username') ? 'auth-username-error' : undefined}
          onInput={(e) => setUsername(e.currentTarget.value)}
          required
        />
        <FieldError id="auth-username-error" message={fieldError('username')} />
        <label for="auth-password">Password</label>
        <input
          id="auth-password"
          name="password"
          type="password"
          autocomplete="current-password"
          value={password}
          aria-invalid={fieldError('password') ? true : undefined}
          aria-describedby={fieldError('password') ? 'auth-password-error' : undefined}
          onInput={(e) => setPassword(e.currentTarget.value)}
          required
        />
        <FieldError id="auth-password-error" message={fieldError('password')} />
        <p class="muted small">Usernames: 3 to 32 letters, digits, _ . or -. Passwords: at least 8 characters.</p>
        <FieldError id="auth-error" message={formError} />
        <div class="row">
          <button type="submit" disabled={busy}>
            Log in
          </button>
          <button type="button" class="secondary" disabled={busy} onClick={() => void run('signup')}>
            Sign up
          </button>
        </div>
      </form>
      <ServerStatus />
    </div>
  );
}
