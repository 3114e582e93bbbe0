; Definitions in Java. Constants are `static final` fields and interface fields.

(class_declaration name: (identifier) @name) @class
(record_declaration name: (identifier) @name) @class
(interface_declaration name: (identifier) @name) @interface
(annotation_type_declaration name: (identifier) @name) @interface
(enum_declaration name: (identifier) @name) @enum
(method_declaration name: (identifier) @name) @method
(constructor_declaration name: (identifier) @name) @method
(constant_declaration declarator: (variable_declarator name: (identifier) @name)) @constant
(field_declaration
  (modifiers) @mods
  declarator: (variable_declarator name: (identifier) @name)
  (#match? @mods "static")
  (#match? @mods "final")) @constant
