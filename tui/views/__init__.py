"""The app's views, one module each: a view is a tab of the main screen with
its own widgets, bindings and handlers; tui.app only composes and routes."""
