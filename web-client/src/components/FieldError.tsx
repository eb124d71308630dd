// How errors are told to people: next to the field at fault, or as one line for the form.
import { isApiError } from '../api/client';

/** A sentence for any failure of a request, without jargon. */
export function describeError(err: unknown): string {
  if (isApiError(err)) {
    if (err.status === 0) {
      return err.code === 'timeout'
        ? 'The server took too long to answer. Try again.'
        : 'Cannot reach the server. Check your connection and try again.';
    }
    if (err.status === 401) return 'You are signed out. Log in again.';
    if (err.status === 403) return `Not allowed: ${err.message}`;
    if (err.status === 404) return 'Not found.';
    if (err.status === 429) return 'Too many attempts. Wait a moment and try again.';
    if (err.status >= 500) return 'The server is unavailable right now. Try again in a moment.';
    return err.message;
  }
  if (err instanceof Error) return err.message;
  return 'Something went wrong.';
}

/** The field a failure names, if any (e.g. `password`). */
export function errorField(err: unknown): string | undefined {
  if (isApiError(err)) return err.field;
  if (err && typeof err === 'object' && 'field' in err && typeof err.field === 'string') return err.field;
  return undefined;
}

export function FieldError({ id, message }: { id: string; message: string | null | undefined }) {
  if (!message) return null;
  return (
    <p id={id} class="field-error" role="alert">
      {message}
    </p>
  );
}
