;;; tandem-eglot.el --- Use Tandem through eglot  -*- lexical-binding: t; -*-

;; Tandem is a standard language server, so eglot needs only to know how to start it.
;; Eglot (Emacs 29's built-in, or elpa-eglot 1.9+ on Emacs 28) has no inline-completion UI:
;; Tandem's suggestions arrive through the completion fallback (`textDocument/completion`),
;; shown by `completion-at-point' (and by corfu or company when installed).
;;
;; Usage: (load "path/to/tandem/editors/emacs/tandem-eglot.el") then M-x eglot in a buffer,
;; or add `eglot-ensure' to the modes' hooks.  Settings for the server go in
;; `tandem-eglot-settings' (the same keys as docs/configuration.md).

(require 'eglot)

(defvar tandem-eglot-program "tandem"
  "The Tandem executable.")

(defvar tandem-eglot-modes
  '(python-mode python-ts-mode rust-mode rust-ts-mode js-mode js-ts-mode typescript-mode
    typescript-ts-mode go-mode go-ts-mode c-mode c++-mode c-ts-mode c++-ts-mode java-mode)
  "Major modes served by Tandem.")

(defvar tandem-eglot-settings nil
  "Tandem settings (a plist, e.g. (:backend (:kind \"ollama\" :model \"qwen2.5-coder:1.5b-base\"))),
sent as `initializationOptions'.")

(defclass tandem-eglot-server (eglot-lsp-server) ()
  "Tandem, started by eglot.")

(cl-defmethod eglot-initialization-options ((_server tandem-eglot-server))
  (or tandem-eglot-settings eglot--{}))

(add-to-list 'eglot-server-programs
             `(,tandem-eglot-modes . (tandem-eglot-server ,tandem-eglot-program "serve")))

(provide 'tandem-eglot)
;;; tandem-eglot.el ends here
