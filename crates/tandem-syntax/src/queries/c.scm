; Definitions in C (and the part C++ shares). Names inside declarators are resolved in the
; code from @declarator: `declaration`s count only when they declare a function (prototypes).

(function_definition declarator: (_) @declarator) @function
(declaration declarator: (_) @declarator) @function
(type_definition declarator: (_) @declarator) @type_alias
(struct_specifier name: (_) @name body: (_)) @struct
(union_specifier name: (_) @name body: (_)) @union
(enum_specifier name: (_) @name body: (_)) @enum
(preproc_def name: (identifier) @name) @constant
(preproc_function_def name: (identifier) @name) @macro
