; Definitions in Python. Functions directly in a class body become methods in the code.

(function_definition name: (identifier) @name) @function
(class_definition name: (identifier) @name) @class
(type_alias_statement left: (type (identifier) @name)) @type_alias

; Module-level constants: assignments to UPPER_CASE names.
(module
  (expression_statement
    (assignment left: (identifier) @name) @constant)
  (#match? @name "^_*[A-Z][A-Z0-9_]*$"))
