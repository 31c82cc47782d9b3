import type { QueryCache } from "@tanstack/react-query";
import { useSyncExternalStore } from "react";

import { ApiError } from "./client";

/** Whether the API is answering: the latest query outcome wins, so the banner clears on the next success. */
export interface ApiStatus {
  outage: string | null;
  lastSuccessAt: number | null;
}

let status: ApiStatus = { outage: null, lastSuccessAt: null };
const listeners = new Set<() => void>();

function set(next: ApiStatus) {
  if (next.outage === status.outage && next.lastSuccessAt === status.lastSuccessAt) return;
  status = next;
  for (const listener of listeners) listener();
}

export function trackApiStatus(cache: QueryCache): () => void {
  return cache.subscribe((event) => {
    if (event.type !== "updated" || event.action.type === "fetch") return;
    if (event.action.type === "error") {
      const error = event.action.error;
      if (error instanceof ApiError && error.isOutage) {
        const outage =
          error.status === 0 ? "The race API is unreachable" : `The race API answered ${error.status}: ${error.message}`;
        set({ ...status, outage });
      }
    } else if (event.action.type === "success") {
      set({ outage: null, lastSuccessAt: event.action.dataUpdatedAt ?? Date.now() });
    }
  });
}

export function useApiStatus(): ApiStatus {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => status,
  );
}
