// Keeps the server's open documents paired and in order. vscode-languageclient 10 sends
// `textDocument/didClose` (and didChange, didSave) for every document its selector matches,
// whether or not it sent `didOpen` for it; and a document that is open but not visible when
// the client starts (VS Code's own settings.json, which code-server edits at startup) is queued
// for a `didOpen` that is flushed asynchronously, so its close can overtake its open, and it can
// be opened twice. The server then logged "closed a document that was not open" and mirrored a
// document VS Code had closed. The middleware below sends a document's notifications one at a
// time, in the order VS Code reported them, and only between its `didOpen` and its `didClose`.

interface DocumentLike {
  readonly uri: { toString(): string };
  readonly isClosed?: boolean;
}

type Next<T> = (data: T) => Promise<void>;

/** vscode-languageclient's document middleware, for documents `D` and change events `E`. */
export interface SyncMiddleware<D extends DocumentLike, E extends { readonly document: D }> {
  didOpen: (document: D, next: Next<D>) => Promise<void>;
  didChange: (event: E, next: Next<E>) => Promise<void>;
  didSave: (document: D, next: Next<D>) => Promise<void>;
  didClose: (document: D, next: Next<D>) => Promise<void>;
}

/** The documents the server was told are open, and the middleware that maintains them. */
export class OpenDocuments {
  private readonly open = new Set<string>();
  /** Per document, the last notification still being sent. */
  private readonly sending = new Map<string, Promise<void>>();

  has(uri: string): boolean {
    return this.open.has(uri);
  }

  /**
   * Runs `step` once the document's earlier notifications are sent: at once (synchronously, so
   * nothing is reordered against requests) when none is in flight.
   */
  private inOrder(uri: string, step: () => Promise<void>): Promise<void> {
    const before = this.sending.get(uri);
    const result = before ? before.then(step) : step();
    const settled = result.catch(() => undefined);
    this.sending.set(uri, settled);
    void settled.then(() => {
      if (this.sending.get(uri) === settled) this.sending.delete(uri);
    });
    return result;
  }

  middleware<D extends DocumentLike, E extends { readonly document: D }>(): SyncMiddleware<D, E> {
    return {
      didOpen: (document, next) => {
        const uri = document.uri.toString();
        return this.inOrder(uri, async () => {
          // A queued open flushed after the document closed, or a second open: not sent.
          if (document.isClosed === true || this.open.has(uri)) return;
          this.open.add(uri);
          return next(document);
        });
      },
      didChange: (event, next) => {
        const uri = event.document.uri.toString();
        return this.inOrder(uri, async () => {
          if (this.open.has(uri)) return next(event);
        });
      },
      didSave: (document, next) => {
        const uri = document.uri.toString();
        return this.inOrder(uri, async () => {
          if (this.open.has(uri)) return next(document);
        });
      },
      didClose: (document, next) => {
        const uri = document.uri.toString();
        return this.inOrder(uri, async () => {
          if (this.open.delete(uri)) return next(document);
        });
      },
    };
  }
}
