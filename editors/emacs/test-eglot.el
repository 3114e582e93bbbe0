;;; test-eglot.el --- Batch test: eglot gets a completion from the real Tandem  -*- lexical-binding: t; -*-

;; emacs --batch -l editors/emacs/test-eglot.el   (TANDEM_BIN names the binary)
;; Starts the real server through eglot with the embedded backend in a temporary workspace
;; whose files repeat a pattern, asks `completion-at-point's table for the candidates at the
;; end of a new line, and checks that Tandem's completion continues the pattern.

(require 'cl-lib)
(let ((elpa "/usr/share/emacs/site-lisp/elpa"))
  (when (file-directory-p elpa)
    (dolist (dir (directory-files elpa t "^[a-z]"))
      (add-to-list 'load-path dir))))
(load (expand-file-name "tandem-eglot.el" (file-name-directory load-file-name)))

(defvar tandem-test-failures 0)
(defvar tandem-test-passes 0)

(defun tandem-test-check (name ok detail)
  (if ok
      (progn (setq tandem-test-passes (1+ tandem-test-passes)) (message "ok: %s" name))
    (setq tandem-test-failures (1+ tandem-test-failures))
    (message "FAIL: %s: %s" name detail)))

(defun tandem-test-wait (what pred seconds)
  "Poll PRED (processing events) for up to SECONDS; fail with WHAT."
  (let ((deadline (+ (float-time) seconds)) value)
    (while (and (not (setq value (funcall pred))) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    (or value (error "Timed out waiting for %s" what))))

(let* ((bin (or (getenv "TANDEM_BIN") "tandem"))
       (root (make-temp-file "tandem-eglot-" t))
       (home (make-temp-file "tandem-eglot-home-" t))
       (tandem-eglot-program bin)
       (eglot-sync-connect t)
       (eglot-autoshutdown t))
  ;; A private config dir, so a developer's own Tandem config cannot leak in.
  (setenv "XDG_CONFIG_HOME" home)
  ;; And a private cache dir, so the server's symbol cache stays out of the real ~/.cache.
  (setenv "XDG_CACHE_HOME" (expand-file-name "cache" home))
  (setq eglot-server-programs
        `(((python-mode) . (tandem-eglot-server ,bin "serve"))))
  (with-temp-file (expand-file-name "tandem.toml" root) (insert ""))
  (with-temp-file (expand-file-name "routes.py" root)
    (insert "from app import router, paths, handlers\n\n"
            "router.get(paths.USERS, handlers.list_users)\n"
            "router.get(paths.INVOICES, handlers.list_invoices)\n"
            "router.get(paths.PAYMENTS, handlers.list_payments)\n"))
  (with-temp-file (expand-file-name "api.py" root)
    (insert "from app import router, paths, handlers\n\n"))
  (condition-case err
      (progn
        (find-file (expand-file-name "api.py" root))
        (python-mode)
        (apply #'eglot (eglot--guess-contact))
        (tandem-test-wait "eglot to connect" (lambda () (eglot-current-server)) 20)
        (let ((server (eglot-current-server)))
          (tandem-test-check "server info says tandem"
                             (equal (plist-get (eglot--server-info server) :name) "tandem")
                             (eglot--server-info server)))
        (goto-char (point-max))
        (insert "router.get(paths.ORDERS,")
        ;; The embedded model indexes the workspace in the background: ask until it answers.
        (let ((candidates
               (tandem-test-wait
                "a completion from Tandem"
                (lambda ()
                  (let* ((capf (eglot-completion-at-point))
                         (table (nth 2 capf))
                         (start (nth 0 capf))
                         (prefix (buffer-substring-no-properties start (point)))
                         (all (and table (all-completions prefix table))))
                    (and all (> (length all) 0) all)))
                20)))
          (tandem-test-check
           "the completion continues the pattern with the new name"
           (cl-some (lambda (c) (string-match-p "handlers\\.list_orders)" c)) candidates)
           candidates)))
    (error (tandem-test-check "the session ran" nil err)))
  (ignore-errors (eglot-shutdown (eglot-current-server)))
  (message "%d passed, %d failed" tandem-test-passes tandem-test-failures)
  (kill-emacs (if (and (= tandem-test-failures 0) (> tandem-test-passes 0)) 0 1)))
