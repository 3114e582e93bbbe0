; Definitions in JavaScript (and the part TypeScript shares). Top-level `const`s are
; constants, or functions when they hold one (decided in the code from @value).

(function_declaration name: (identifier) @name) @function
(generator_function_declaration name: (identifier) @name) @function
(class_declaration name: (_) @name) @class
(method_definition name: (_) @name) @method

(program
  (lexical_declaration
    kind: "const"
    (variable_declarator name: (identifier) @name value: (_) @value)) @constant)
(program
  (export_statement
    declaration: (lexical_declaration
      kind: "const"
      (variable_declarator name: (identifier) @name value: (_) @value)) @constant))
