"""What the visitor pages and the staff pages both use: form fields and the reservation
page's values. Neither audience's blueprint imports the other's."""
