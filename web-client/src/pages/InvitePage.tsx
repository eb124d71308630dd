// /invite/{code}: joins the project and opens it; asks to sign up or log in first if needed.
import { useEffect, useState } from 'preact/hooks';
import { rest } from '../api/rest';
import { describeError } from '../components/FieldError';
import { navigate } from '../router';
import { currentUser } from '../state/session';
import { AuthPage } from './AuthPage';

export function InvitePage({ code }: { code: string }) {
  const user = currentUser.value;
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!user) return;
    let live = true;
    rest
      .acceptInvite(code)
      .then((p) => live && navigate(`/p/${p.id}`, true))
      .catch((err) => live && setError(describeError(err)));
    return () => {
      live = false;
    };
  }, [user, code]);

  if (!user) return <AuthPage invite={code} />;
  return (
    <div class="auth">
      <h1>Joining the project…</h1>
      {error && (
        <p class="field-error" role="alert">
          This invite does not work: {error}
        </p>
      )}
    </div>
  );
}
