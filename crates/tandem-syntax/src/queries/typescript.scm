; What TypeScript adds to the JavaScript definitions.

(abstract_class_declaration name: (_) @name) @class
(interface_declaration name: (_) @name) @interface
(type_alias_declaration name: (_) @name) @type_alias
(enum_declaration name: (_) @name) @enum
(function_signature name: (_) @name) @function
(method_signature name: (_) @name) @method
(abstract_method_signature name: (_) @name) @method
(internal_module name: (_) @name) @module
(module name: (_) @name) @module
(public_field_definition
  name: (_) @name
  value: [(arrow_function) (function_expression)]) @method
