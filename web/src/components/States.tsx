import type { ReactNode } from "react";
import { Link } from "react-router-dom";

import { ApiError } from "../api/client";

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" aria-busy="true">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty muted">{children}</p>;
}

export function QueryError({ error, what }: { error: unknown; what: string }) {
  const message = error instanceof ApiError ? error.message : "unexpected error";
  return (
    <p className="error-text" role="status">
      Could not load {what}: {message}
    </p>
  );
}

export function NotFound({ what }: { what?: string }) {
  return (
    <section className="not-found" data-testid="not-found">
      <h1>Not found</h1>
      <p>{what ?? "There is no page at this address."}</p>
      <p>
        <Link to="/">Back to the race</Link>
      </p>
    </section>
  );
}
