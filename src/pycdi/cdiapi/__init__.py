"""The CDI API: UploadTokenRequest and admission."""
